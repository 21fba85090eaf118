"""Chorus: real-time group messaging for the web.

The folder services/ installs as this package; each service is a subpackage
(auth, membership, broker, webgate), generated protobuf code is chorus.wire.pb and
the few pieces they share are in chorus.common.
"""
