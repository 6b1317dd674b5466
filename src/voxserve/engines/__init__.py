"""voxserve.engines"""
