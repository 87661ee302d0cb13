"""The event-driven runtime: S3 events -> route -> process one object; generation workflow steps;
the local AWS emulation behind ``docmill dev``. Handlers in functions/ are thin wrappers of these."""
