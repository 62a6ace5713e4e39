"""Test infrastructure shared by pytest fixtures and unittest test cases."""
