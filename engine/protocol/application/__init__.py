"""status-go's application layer, sans-I/O: AMMs and message ids (``metadata``), receive validation
(``validation``), MVDS datasync (``datasync``), segmentation with Reed–Solomon parity (``segmentation``,
``erasure``), message builders (``messages``) and Go-exact protobuf encoding (``wire``).
"""
