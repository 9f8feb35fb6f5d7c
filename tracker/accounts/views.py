"""The second-factor pages of the clinicians' workspace: set up an authenticator, or type a code.

Only for signed-in staff (others go to the admin's sign-in). The logic is in ``tracker.accounts.mfa``.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.cache import never_cache

from tracker.accounts import mfa

WRONG_CODE = (
    "That code did not match. Type the 6 digits your authenticator app shows now "
    "(check that your phone's clock is right), or one of your recovery codes."
)
WRONG_SETUP_CODE = (
    "That code did not match. Type the 6 digits the app shows for this account now; "
    "if it keeps failing, check that your phone's clock is set automatically."
)


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=32,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "text", "autofocus": True}),
        error_messages={"required": "Type the code from your authenticator app, or a recovery code."},
    )


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("admin:index")


def _page(request: HttpRequest, template: str, title: str, **context: object) -> HttpResponse:
    response = render(
        request,
        template,
        {
            **admin.site.each_context(request),
            # No clinical navigation before the second step.
            "available_apps": [],
            "is_nav_sidebar_enabled": False,
            "title": title,
            "next": _next_url(request),
            **context,
        },
    )
    response["Cache-Control"] = "no-store"
    return response


@never_cache
@staff_member_required
def start(request: HttpRequest) -> HttpResponse:
    """Where the middleware sends staff: set up if they have no authenticator, else the code page."""
    target = "mfa:verify" if mfa.has_authenticator(request.user) else "mfa:setup"
    query = request.META.get("QUERY_STRING", "")
    return redirect(reverse(target) + (f"?{query}" if query else ""))


@never_cache
@staff_member_required
def setup(request: HttpRequest) -> HttpResponse:
    """The QR code and the secret as text; a code from the app confirms it; then the recovery codes, once."""
    if mfa.has_authenticator(request.user):
        # A new authenticator only after the old one has been removed (by an administrator):
        # a stolen password alone must not be enough to enrol the thief's phone.
        return HttpResponseRedirect(reverse("mfa:verify") + "?" + urlencode({"next": _next_url(request)}))
    device = mfa.pending_authenticator(request.user)
    form = CodeForm(request.POST or None)
    if form.is_valid():
        codes = mfa.confirm_authenticator(request.user, device, form.cleaned_data["code"])
        if codes is not None:
            mfa.mark_verified(request, device)
            return _page(request, "admin/mfa/recovery_codes.html", "Your recovery codes", codes=codes)
        form.add_error("code", WRONG_SETUP_CODE)
    return _page(
        request,
        "admin/mfa/setup.html",
        "Set up your second sign-in step",
        form=form,
        qr=mfa.qr_data_uri(device),
        secret=mfa.secret_text(device),
    )


@never_cache
@staff_member_required
def verify(request: HttpRequest) -> HttpResponse:
    """Type the code from the authenticator app, or a recovery code (each works once)."""
    if request.user.is_verified():
        return HttpResponseRedirect(_next_url(request))
    if not mfa.has_authenticator(request.user):
        return HttpResponseRedirect(reverse("mfa:setup") + "?" + urlencode({"next": _next_url(request)}))
    form = CodeForm(request.POST or None)
    if form.is_valid():
        result = mfa.verify_code(request.user, form.cleaned_data["code"])
        if result.device is not None:
            mfa.mark_verified(request, result.device)
            return HttpResponseRedirect(_next_url(request))
        form.add_error("code", result.wait_message or WRONG_CODE)
    return _page(request, "admin/mfa/verify.html", "Type your sign-in code", form=form)
