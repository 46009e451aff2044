"""Simulators: WES servers (HTTP, FTP, M2M) with realistic consumption and faults."""

__all__: list[str] = []
