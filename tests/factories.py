"""factory_boy factories for the tracker's models (catalogue drugs come from the migration)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from tracker.models import Clinic, Clinician, DoseSchedule, Drug, Patient, Prescription

User = get_user_model()


def drug(name: str) -> Drug:
    """A drug from the seeded catalogue, by its generic name."""
    return Drug.objects.get(name=name)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    password = factory.PostGenerationMethodCall("set_password", "correct-horse-battery-staple")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class ClinicFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Clinic
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Clinic {n}")
    slug = factory.Sequence(lambda n: f"clinic-{n}")
    # A REMS-certified setting (§1), so outpatient esketamine sessions may start; the rule's tests clear it.
    rems_certification = factory.Sequence(lambda n: f"REMS-TEST-{n:04d}")


class ClinicianFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Clinician
        skip_postgeneration_save = True

    user = factory.SubFactory(UserFactory, is_staff=True)
    clinic = factory.SubFactory(ClinicFactory)
    role = Clinician.Role.PRESCRIBER
    title = "Dr"

    @factory.post_generation
    def role_group(obj, create, extracted, **kwargs):
        """Give the user the permissions of the role, as add_clinician does."""
        if create:
            from tracker.services.clinicians import sync_clinician_groups

            sync_clinician_groups(clinician=obj)


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient

    clinic = factory.SubFactory(ClinicFactory)
    record_number = factory.Sequence(lambda n: f"MRN{n:06d}")
    given_name = factory.Faker("first_name")
    family_name = factory.Faker("last_name")
    date_of_birth = dt.date(1985, 6, 15)
    timezone = "Europe/London"
    # Enrolled in the Spravato REMS (§1), so an outpatient esketamine session may start; the
    # tests of that rule clear it.
    rems_enrolled_on = dt.date(2020, 1, 1)


class PrescriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Prescription

    patient = factory.SubFactory(PatientFactory)
    drug = factory.LazyFunction(lambda: drug("sertraline"))
    dose = Decimal("50")
    dose_unit = factory.LazyAttribute(lambda rx: rx.drug.dose_unit)
    route = factory.LazyAttribute(lambda rx: rx.drug.routes[0])
    start_date = factory.LazyFunction(timezone.localdate)
    prescriber = factory.SubFactory(ClinicianFactory, clinic=factory.SelfAttribute("..patient.clinic"))
    indication = "Major depressive disorder"


class DoseScheduleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DoseSchedule

    prescription = factory.SubFactory(PrescriptionFactory)
    kind = DoseSchedule.Kind.DAILY
    times_of_day = factory.LazyFunction(lambda: ["08:00"])
    start_date = factory.SelfAttribute("prescription.start_date")
