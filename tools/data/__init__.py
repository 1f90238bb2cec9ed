"""Reading behaviour data in: file formats, column roles, cell conversion, interactions, item texts, and the sample shop."""
