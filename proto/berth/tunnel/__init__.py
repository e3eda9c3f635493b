"""The dial-out tunnel's contract."""
