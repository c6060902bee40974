"""Application services: compose vision, planogram logic and storage for the CLI and dashboard."""
