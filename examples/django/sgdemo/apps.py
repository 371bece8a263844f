"""App configuration of the example: stores the user name in the shared
session at login, so the PHP side can greet the user by name without a
database of its own (sessiongate_user_id() in PHP gives only the id)."""

from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_in

# The session key the PHP example reads (examples/php/whoami.php). Django's
# logout flushes the whole session, so it disappears with the login.
USERNAME_KEY = "username"


def remember_username(sender, request, user, **kwargs):
    # login() has already rotated the session ID (cycle_key) and stored
    # _auth_user_id when the signal fires: this lands in the new session.
    request.session[USERNAME_KEY] = user.get_username()


class SgdemoConfig(AppConfig):
    name = "sgdemo"
    default_auto_field = "django.db.models.AutoField"

    def ready(self):
        user_logged_in.connect(remember_username, dispatch_uid="sgdemo.remember_username")
