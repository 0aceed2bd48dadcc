"""Services: async orchestration of one call or one request, through ports."""
