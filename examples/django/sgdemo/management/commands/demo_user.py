from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create (or reset) the demo superuser, by default demo / demo-password."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", default="demo-password")

    def handle(self, *args, **opts):
        User = get_user_model()
        user, created = User.objects.get_or_create(username=opts["username"])
        user.is_staff = user.is_superuser = True
        # Hash the password only when it is not already this one: a new hash
        # (new salt) changes Django's session auth hash, which logs out every
        # session of the user, and `make demo` runs this at every start.
        reset = created or not user.check_password(opts["password"])
        if reset:
            user.set_password(opts["password"])
        user.save()
        state = "created" if created else "reset" if reset else "kept"
        self.stdout.write("%s user %s (id %s)" % (state, user.username, user.pk))
