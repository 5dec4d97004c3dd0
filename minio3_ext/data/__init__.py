"""Datasets for minio3_ext: the synthetic visual-search generator (:mod:`.synthetic`).

    from minio3_ext.data.synthetic import generate, load_rows
"""
