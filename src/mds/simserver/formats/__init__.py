"""One module per vendor: the inverse of the adapter, rendering sim bars in the vendor's wire format."""
