"""The ground every stage stands on: errors, the dataset shape, the workspace folder, a finished run's state, privacy masking."""
