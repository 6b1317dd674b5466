"""voxserve.cli"""
