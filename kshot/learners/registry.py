from ..registry import Registry

METHODS: Registry = Registry("method")
