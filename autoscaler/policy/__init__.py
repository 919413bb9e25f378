"""The ScalingPolicy: its models (``models``, the CRD's fields and validation), its OpenAPI ``schema`` for
the CRD, and ``loading`` it from YAML files or API objects with errors that name the file, line and field.
"""
