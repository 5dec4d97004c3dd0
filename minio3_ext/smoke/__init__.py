"""Real training steps of the shipped recipes on CPU (``minio3 smoke verl|trl``)."""
