"""The portal's link to Microsoft: clouds, the Entra / Graph / Intune client, and errors explained."""
