"""voxserve.storage"""
