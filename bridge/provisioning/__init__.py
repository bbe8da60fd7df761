"""The signed HTTP API the WordPress plugin calls to say what the firm looks like."""
