"""Small pieces shared by the services: database engines, gRPC server setup, ids."""
