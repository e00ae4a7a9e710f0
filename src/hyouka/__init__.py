"""hyouka"""
