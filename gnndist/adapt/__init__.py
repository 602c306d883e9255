"""Adaptation while training: monitored metrics and the policies that act on them."""
