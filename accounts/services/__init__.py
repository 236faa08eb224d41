"""Every change accounts makes to users and their sign-ins, whichever view, backend, receiver
or command asks."""
