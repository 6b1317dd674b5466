"""voxserve.api"""
