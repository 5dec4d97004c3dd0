"""minio3_ext: Mini-o3 deep multi-turn visual search as plugins for verl and TRL.

The framework-free core lives in :mod:`minio3_ext.core`; the verl and TRL adapters
live in :mod:`minio3_ext.verl` and :mod:`minio3_ext.trl` and are imported only on
demand (importing this package pulls in neither torch nor either framework).
"""

__version__ = "0.1.0"
