"""The execflow command line."""
