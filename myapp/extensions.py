"""Every Flask extension, instantiated once and initialised in ``create_app``."""

from typing import TYPE_CHECKING

from flask_jwt_extended import JWTManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from myapp.mail import Mail
from myapp.openapi import Api
from myapp.passwords import PasswordHasher

# Deterministic constraint names: Alembic can then ALTER/DROP them, on SQLite too.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
# The models' base class. Flask-SQLAlchemy builds db.Model from Base at run time;
# type checkers cannot follow that, so they are shown Base (the same mappings).
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model
migrate = Migrate()
jwt = JWTManager()
api = Api()
passwords = PasswordHasher()
mail = Mail()
