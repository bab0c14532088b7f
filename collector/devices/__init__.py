"""Sources that read the miners themselves (their own APIs on the site network)."""
