"""The PII engine: Presidio with recognizers for Chinese and English bank text, offline."""
