"""The StoreMigration API service: a FastAPI app over the graph and agent-task stores."""
