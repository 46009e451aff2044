"""Tests of wesh.sync (Tonique)."""
