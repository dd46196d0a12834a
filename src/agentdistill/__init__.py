"""agentdistill: customize a compact model for a multi-agent system and serve it fast."""

__version__ = "0.1.0"
