"""The MCP endpoint: execflow's Tools as Model Context Protocol tools, each call a Task."""
