"""What a job is: its states, type specs, retry policy and stored record."""
