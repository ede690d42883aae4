"""The claims the test provider gives for a user."""

# Users in this group have an email address the provider has not verified.
UNVERIFIED_GROUP = "unverified-email"


def userinfo(claims, user):
    claims["preferred_username"] = user.username
    claims["name"] = user.get_full_name()
    claims["email"] = user.email
    claims["email_verified"] = not user.groups.filter(name=UNVERIFIED_GROUP).exists()
    return claims
