terraform {
  # 1.9: a variable's validation may refer to other variables (the schedule
  # names' length checks name_prefix).
  required_version = ">= 1.9"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.60, < 6.0"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, { "lifeboat:deployment" = trimsuffix(var.name_prefix, "-") })
  }
}
