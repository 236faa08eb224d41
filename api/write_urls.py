"""The API's endpoints that change something: Set Actions, retries and cancels."""

urlpatterns: list = []
