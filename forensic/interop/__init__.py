"""Adapters to other tools' formats, each one small module around one library."""
