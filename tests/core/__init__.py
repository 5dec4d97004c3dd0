"""Tests of the framework-free core (minio3_ext.core)."""
