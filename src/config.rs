//! Configuration: command line and YAML.
