"""Policy and scans: the pack runner, the first-preview plan, Checkov, the secret scan, the workflow lint."""
