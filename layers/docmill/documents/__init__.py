"""Document processing: detect and validate, partition (Unstructured), clean, chunk."""
