"""The Pulumi program's components, the deploy-time data they read and the types they share."""
