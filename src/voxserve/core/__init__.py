"""voxserve.core"""
