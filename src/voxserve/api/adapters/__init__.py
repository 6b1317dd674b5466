"""voxserve.api.adapters"""
