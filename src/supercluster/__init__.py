"""supercluster"""
