"""Close one gap of the moto S3 emulator that the local runtime depends on.

On AWS, deleting an object of a versioned bucket without a version id creates a delete marker
and sends ``s3:ObjectRemoved:DeleteMarkerCreated`` to the bucket's notification targets; moto
(5.x) creates the marker but sends no event, so ``aws s3 rm`` in ``docmill dev`` would never
reach the route step. ``emit_delete_marker_events()`` patches moto's marker creation to send
the event AWS sends (other moto behaviour is untouched); ``restore()`` undoes it.
"""

from __future__ import annotations

from typing import Any

_original: Any = None


def emit_delete_marker_events() -> None:
    global _original
    from moto.s3 import notifications
    from moto.s3.models import S3Backend

    if _original is not None:
        return
    original = S3Backend._set_delete_marker

    def _set_delete_marker(self: Any, bucket_name: str, key_name: str) -> Any:
        marker = original(self, bucket_name, key_name)
        bucket = self.get_bucket(bucket_name)
        # The marker wraps the key it hides: that key carries the size/etag the event names.
        notifications.send_event(
            self.account_id,
            notifications.S3NotificationEvent.OBJECT_REMOVED_DELETE_MARKER_CREATED_EVENT,
            bucket,
            marker.key,
        )
        return marker

    _original = original
    S3Backend._set_delete_marker = _set_delete_marker


def restore() -> None:
    global _original
    from moto.s3.models import S3Backend

    if _original is not None:
        S3Backend._set_delete_marker = _original
        _original = None
