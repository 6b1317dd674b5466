"""voxserve.models"""
