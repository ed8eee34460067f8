"""A correct but slow attention: every score is materialised in fp32."""
