"""pairflow: log devices in by pairing (ezeep pairing flow and RFC 8628 device grant)."""

__version__ = "0.1.0"
