"""Attention that forgets to scale the scores by 1/sqrt(d): a wrong answer."""
